<?xml version="1.0" encoding="UTF-8"?>
<!-- Worked example of a JSON http adapter's address-book import: a service
     shaped like Microsoft Graph's contacts (docs/operations.md, "Address
     books from a JSON REST service").

     Input:  the pages of me/contacts (or me/contacts/delta), as xdmsd
             gives them to every JSON import: <array
             xmlns="http://www.w3.org/2005/xpath-functions"> with one <map>
             per page, the contacts in its value[]. A contact has id and
             @odata.etag, givenName, middleName, surname, displayName,
             emailAddresses[] (address, name), businessPhones[],
             mobilePhone, homePhones[], homeAddress and businessAddress
             (street, city, state, postalCode, countryOrRegion),
             companyName, jobTitle, birthday (1985-04-12T00:00:00Z); in a
             delta a removed one has @removed.
     Output: one <entry> per contact in <book xmlns="urn:xdmsd:xml:iwf-book">:
             @id the id, @etag the @odata.etag, holding the contact as an
             xCard <vcard> (RFC 6351), which xdmsd maps to a contact with
             xcard2pcc.xsl; a removed one is <entry id=".." removed="true"/>. -->
<xsl:stylesheet version="1.0"
                xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
                xmlns:j="http://www.w3.org/2005/xpath-functions"
                xmlns:b="urn:xdmsd:xml:iwf-book"
                xmlns="urn:ietf:params:xml:ns:vcard-4.0"
                exclude-result-prefixes="j">
  <xsl:output method="xml" encoding="UTF-8" indent="no"/>
  <xsl:strip-space elements="*"/>
  <xsl:param name="xui"/>
  <xsl:param name="remote-user"/>

  <xsl:template match="/">
    <xsl:if test="not(j:array/j:map)">
      <xsl:message terminate="yes">the 3rd party did not send JSON pages</xsl:message>
    </xsl:if>
    <b:book>
      <xsl:apply-templates select="j:array/j:map/j:array[@key = 'value']/j:map"/>
    </b:book>
  </xsl:template>

  <xsl:template match="j:map[j:map[@key = '@removed']]">
    <b:entry id="{j:string[@key = 'id']}" removed="true"/>
  </xsl:template>

  <xsl:template name="tel">
    <xsl:param name="type"/>
    <tel>
      <parameters><type><text><xsl:value-of select="$type"/></text></type></parameters>
      <uri>tel:<xsl:value-of select="translate(., ' ', '')"/></uri>
    </tel>
  </xsl:template>

  <xsl:template name="adr">
    <xsl:param name="type"/>
    <adr>
      <parameters><type><text><xsl:value-of select="$type"/></text></type></parameters>
      <pobox/><ext/>
      <street><xsl:value-of select="j:string[@key = 'street']"/></street>
      <locality><xsl:value-of select="j:string[@key = 'city']"/></locality>
      <region><xsl:value-of select="j:string[@key = 'state']"/></region>
      <code><xsl:value-of select="j:string[@key = 'postalCode']"/></code>
      <country><xsl:value-of select="j:string[@key = 'countryOrRegion']"/></country>
    </adr>
  </xsl:template>

  <xsl:template match="j:map">
    <xsl:variable name="fn">
      <xsl:choose>
        <xsl:when test="j:string[@key = 'displayName'] != ''"><xsl:value-of select="j:string[@key = 'displayName']"/></xsl:when>
        <xsl:when test="j:string[@key = 'givenName'] != '' or j:string[@key = 'surname'] != ''">
          <xsl:value-of select="normalize-space(concat(j:string[@key = 'givenName'], ' ', j:string[@key = 'surname']))"/>
        </xsl:when>
        <xsl:otherwise><xsl:value-of select="j:array[@key = 'emailAddresses']/j:map[1]/j:string[@key = 'address']"/></xsl:otherwise>
      </xsl:choose>
    </xsl:variable>
    <b:entry id="{j:string[@key = 'id']}">
      <xsl:if test="j:string[@key = '@odata.etag'] != ''"><xsl:attribute name="etag"><xsl:value-of select="j:string[@key = '@odata.etag']"/></xsl:attribute></xsl:if>
      <!-- A contact with nothing to call it by (no name, no e-mail
           address) has no FN, which every vCard has (RFC 6350 section
           6.2.1): it goes without a card, and xdmsd refuses it by its id. -->
      <xsl:if test="normalize-space($fn) != ''">
      <vcard>
        <fn><text><xsl:value-of select="$fn"/></text></fn>
        <xsl:if test="j:string[@key = 'givenName' or @key = 'surname' or @key = 'middleName'] != ''">
          <n>
            <surname><xsl:value-of select="j:string[@key = 'surname']"/></surname>
            <given><xsl:value-of select="j:string[@key = 'givenName']"/></given>
            <additional><xsl:value-of select="j:string[@key = 'middleName']"/></additional>
            <prefix/><suffix/>
          </n>
        </xsl:if>
        <xsl:for-each select="j:string[@key = 'mobilePhone'][. != '']"><xsl:call-template name="tel"><xsl:with-param name="type" select="'cell'"/></xsl:call-template></xsl:for-each>
        <xsl:for-each select="j:array[@key = 'businessPhones']/j:string[. != '']"><xsl:call-template name="tel"><xsl:with-param name="type" select="'work'"/></xsl:call-template></xsl:for-each>
        <xsl:for-each select="j:array[@key = 'homePhones']/j:string[. != '']"><xsl:call-template name="tel"><xsl:with-param name="type" select="'home'"/></xsl:call-template></xsl:for-each>
        <xsl:for-each select="j:array[@key = 'emailAddresses']/j:map[j:string[@key = 'address'] != '']">
          <email><text><xsl:value-of select="j:string[@key = 'address']"/></text></email>
        </xsl:for-each>
        <xsl:for-each select="j:map[@key = 'homeAddress'][j:string != '']"><xsl:call-template name="adr"><xsl:with-param name="type" select="'home'"/></xsl:call-template></xsl:for-each>
        <xsl:for-each select="j:map[@key = 'businessAddress'][j:string != '']"><xsl:call-template name="adr"><xsl:with-param name="type" select="'work'"/></xsl:call-template></xsl:for-each>
        <xsl:for-each select="j:string[@key = 'companyName'][. != '']"><org><text><xsl:value-of select="."/></text></org></xsl:for-each>
        <xsl:for-each select="j:string[@key = 'jobTitle'][. != '']"><title><text><xsl:value-of select="."/></text></title></xsl:for-each>
        <xsl:for-each select="j:string[@key = 'birthday'][. != '']">
          <bday><date><xsl:value-of select="translate(substring(., 1, 10), '-', '')"/></date></bday>
        </xsl:for-each>
      </vcard>
      </xsl:if>
    </b:entry>
  </xsl:template>
</xsl:stylesheet>
