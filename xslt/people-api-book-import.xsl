<?xml version="1.0" encoding="UTF-8"?>
<!-- Worked example of a JSON http adapter's address-book import: a service
     shaped like the Google People API's connections (docs/operations.md,
     "Address books from a JSON REST service").

     Input:  the pages of people/me/connections, as xdmsd gives them to
             every JSON import: <array xmlns="http://www.w3.org/2005/xpath-functions">
             with one <map> per page. A Person has resourceName and etag,
             names[] (displayName, givenName, middleName, familyName,
             honorificPrefix, honorificSuffix), emailAddresses[] and
             phoneNumbers[] (value, type), addresses[] (streetAddress, city,
             region, postalCode, country, formattedValue, type),
             organizations[] (name, title), birthdays[] (date: year, month,
             day), photos[] (url, default); a deleted one (in a sync) has
             metadata.deleted true.
     Output: one <entry> per person in <book xmlns="urn:xdmsd:xml:iwf-book">:
             @id the resourceName, @etag the etag, holding the person as an
             xCard <vcard> (RFC 6351), which xdmsd maps to a contact with
             xcard2pcc.xsl; a deleted person is <entry id=".." removed="true"/>. -->
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
      <xsl:apply-templates select="j:array/j:map/j:array[@key = 'connections']/j:map"/>
    </b:book>
  </xsl:template>

  <xsl:template match="j:map[j:map[@key = 'metadata']/j:boolean[@key = 'deleted'] = 'true']">
    <b:entry id="{j:string[@key = 'resourceName']}" removed="true"/>
  </xsl:template>

  <xsl:template name="tel-type">
    <xsl:param name="t"/>
    <xsl:choose>
      <xsl:when test="$t = 'mobile'">cell</xsl:when>
      <xsl:when test="$t = 'work' or $t = 'workMobile'">work</xsl:when>
      <xsl:when test="$t = 'home'">home</xsl:when>
      <xsl:when test="$t = 'homeFax' or $t = 'workFax' or $t = 'otherFax'">fax</xsl:when>
    </xsl:choose>
  </xsl:template>

  <xsl:template name="type">
    <xsl:param name="t"/>
    <xsl:if test="$t != ''"><parameters><type><text><xsl:value-of select="$t"/></text></type></parameters></xsl:if>
  </xsl:template>

  <xsl:template name="two">
    <xsl:param name="n"/>
    <xsl:value-of select="format-number($n, '00')"/>
  </xsl:template>

  <xsl:template match="j:map">
    <xsl:variable name="name" select="j:array[@key = 'names']/j:map[1]"/>
    <xsl:variable name="fn">
      <xsl:choose>
        <xsl:when test="$name/j:string[@key = 'displayName'] != ''"><xsl:value-of select="$name/j:string[@key = 'displayName']"/></xsl:when>
        <xsl:when test="$name/j:string[@key = 'givenName'] or $name/j:string[@key = 'familyName']">
          <xsl:value-of select="normalize-space(concat($name/j:string[@key = 'givenName'], ' ', $name/j:string[@key = 'familyName']))"/>
        </xsl:when>
        <xsl:otherwise><xsl:value-of select="j:array[@key = 'emailAddresses']/j:map[1]/j:string[@key = 'value']"/></xsl:otherwise>
      </xsl:choose>
    </xsl:variable>
    <b:entry id="{j:string[@key = 'resourceName']}">
      <xsl:if test="j:string[@key = 'etag'] != ''"><xsl:attribute name="etag"><xsl:value-of select="j:string[@key = 'etag']"/></xsl:attribute></xsl:if>
      <!-- A contact with nothing to call it by (no name, no e-mail
           address) has no FN, which every vCard has (RFC 6350 section
           6.2.1): it goes without a card, and xdmsd refuses it by its id. -->
      <xsl:if test="normalize-space($fn) != ''">
      <vcard>
        <fn><text><xsl:value-of select="$fn"/></text></fn>
        <xsl:if test="$name/j:string[@key = 'givenName' or @key = 'familyName' or @key = 'middleName']">
          <n>
            <surname><xsl:value-of select="$name/j:string[@key = 'familyName']"/></surname>
            <given><xsl:value-of select="$name/j:string[@key = 'givenName']"/></given>
            <additional><xsl:value-of select="$name/j:string[@key = 'middleName']"/></additional>
            <prefix><xsl:value-of select="$name/j:string[@key = 'honorificPrefix']"/></prefix>
            <suffix><xsl:value-of select="$name/j:string[@key = 'honorificSuffix']"/></suffix>
          </n>
        </xsl:if>
        <xsl:for-each select="j:array[@key = 'phoneNumbers']/j:map[j:string[@key = 'value'] != '']">
          <tel>
            <xsl:call-template name="type">
              <xsl:with-param name="t"><xsl:call-template name="tel-type"><xsl:with-param name="t" select="j:string[@key = 'type']"/></xsl:call-template></xsl:with-param>
            </xsl:call-template>
            <uri>tel:<xsl:value-of select="translate(j:string[@key = 'value'], ' ', '')"/></uri>
          </tel>
        </xsl:for-each>
        <xsl:for-each select="j:array[@key = 'emailAddresses']/j:map[j:string[@key = 'value'] != '']">
          <email>
            <xsl:call-template name="type"><xsl:with-param name="t" select="j:string[@key = 'type'][. = 'home' or . = 'work']"/></xsl:call-template>
            <text><xsl:value-of select="j:string[@key = 'value']"/></text>
          </email>
        </xsl:for-each>
        <xsl:for-each select="j:array[@key = 'addresses']/j:map">
          <xsl:variable name="street">
            <xsl:choose>
              <xsl:when test="j:string[@key = 'streetAddress'] != ''"><xsl:value-of select="j:string[@key = 'streetAddress']"/></xsl:when>
              <xsl:otherwise><xsl:value-of select="j:string[@key = 'formattedValue']"/></xsl:otherwise>
            </xsl:choose>
          </xsl:variable>
          <adr>
            <xsl:call-template name="type"><xsl:with-param name="t" select="j:string[@key = 'type'][. = 'home' or . = 'work']"/></xsl:call-template>
            <pobox/><ext/>
            <street><xsl:value-of select="$street"/></street>
            <locality><xsl:value-of select="j:string[@key = 'city']"/></locality>
            <region><xsl:value-of select="j:string[@key = 'region']"/></region>
            <code><xsl:value-of select="j:string[@key = 'postalCode']"/></code>
            <country><xsl:value-of select="j:string[@key = 'country']"/></country>
          </adr>
        </xsl:for-each>
        <xsl:for-each select="j:array[@key = 'organizations']/j:map">
          <xsl:if test="j:string[@key = 'name'] != ''"><org><text><xsl:value-of select="j:string[@key = 'name']"/></text></org></xsl:if>
          <xsl:if test="j:string[@key = 'title'] != ''"><title><text><xsl:value-of select="j:string[@key = 'title']"/></text></title></xsl:if>
        </xsl:for-each>
        <xsl:for-each select="j:array[@key = 'birthdays']/j:map/j:map[@key = 'date'][1]">
          <bday>
            <xsl:choose>
              <xsl:when test="j:number[@key = 'year']">
                <date><xsl:value-of select="format-number(j:number[@key = 'year'], '0000')"/><xsl:call-template name="two"><xsl:with-param name="n" select="j:number[@key = 'month']"/></xsl:call-template><xsl:call-template name="two"><xsl:with-param name="n" select="j:number[@key = 'day']"/></xsl:call-template></date>
              </xsl:when>
              <xsl:otherwise>
                <date>--<xsl:call-template name="two"><xsl:with-param name="n" select="j:number[@key = 'month']"/></xsl:call-template><xsl:call-template name="two"><xsl:with-param name="n" select="j:number[@key = 'day']"/></xsl:call-template></date>
              </xsl:otherwise>
            </xsl:choose>
          </bday>
        </xsl:for-each>
        <!-- The default photo (the initials People makes up) is no photo. -->
        <xsl:for-each select="j:array[@key = 'photos']/j:map[j:string[@key = 'url'] != ''][not(j:boolean[@key = 'default'] = 'true')][1]">
          <photo><uri><xsl:value-of select="j:string[@key = 'url']"/></uri></photo>
        </xsl:for-each>
      </vcard>
      </xsl:if>
    </b:entry>
  </xsl:template>
</xsl:stylesheet>
