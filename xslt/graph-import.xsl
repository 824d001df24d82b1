<?xml version="1.0" encoding="UTF-8"?>
<!-- Worked example of a JSON http adapter's import transform: a service
     shaped like Microsoft Graph's contacts and users (docs/operations.md,
     "Connecting a JSON REST service with OAuth 2.0").

     Input:  the pages of a collection (value[], followed by
             @odata.nextLink, ending with @odata.deltaLink in a delta query),
             as xdmsd gives them to every JSON import: <array
             xmlns="http://www.w3.org/2005/xpath-functions"> with one <map>
             per page. An entry has displayName, givenName, surname,
             emailAddresses[] (address) or mail / userPrincipalName,
             businessPhones[], homePhones[], mobilePhone, companyName,
             jobTitle, birthday (an ISO 8601 date-time), and businessAddress
             / homeAddress (street, city, state, postalCode,
             countryOrRegion); one removed since the delta link has
             "@removed".
     Output: <pcc> with one person-details: the entry whose address is the
             request's <remote-user> (any letter case), or, without a remote
             user, the first entry. None gives a <pcc> without
             person-details: after a delta link, nothing changed for this
             user; in a full sync, the user is not there (404). -->
<xsl:stylesheet version="1.0"
                xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
                xmlns:j="http://www.w3.org/2005/xpath-functions"
                xmlns="urn:oma:xml:cab:pcc"
                exclude-result-prefixes="j">
  <xsl:output method="xml" encoding="UTF-8" indent="no"/>
  <xsl:strip-space elements="*"/>
  <xsl:param name="xui"/>
  <xsl:param name="remote-user"/>

  <xsl:variable name="lower" select="'abcdefghijklmnopqrstuvwxyz'"/>
  <xsl:variable name="upper" select="'ABCDEFGHIJKLMNOPQRSTUVWXYZ'"/>
  <xsl:variable name="me" select="translate(normalize-space($remote-user), $upper, $lower)"/>
  <xsl:variable name="entries" select="/j:array/j:map/j:array[@key = 'value']/j:map[not(*[@key = '@removed'])]"/>

  <xsl:template match="/">
    <xsl:if test="not(j:array/j:map)">
      <xsl:message terminate="yes">the 3rd party did not send JSON pages</xsl:message>
    </xsl:if>
    <pcc pcc-type="individual">
      <xsl:choose>
        <xsl:when test="$me != ''">
          <xsl:apply-templates select="$entries[(j:array[@key = 'emailAddresses']/j:map/j:string[@key = 'address']
                                                | j:string[@key = 'mail'] | j:string[@key = 'userPrincipalName'])
                                               [translate(normalize-space(.), $upper, $lower) = $me]][1]"/>
        </xsl:when>
        <xsl:otherwise><xsl:apply-templates select="$entries[1]"/></xsl:otherwise>
      </xsl:choose>
    </pcc>
  </xsl:template>

  <xsl:template name="tel">
    <xsl:param name="type"/>
    <xsl:param name="pref"/>
    <tel pref="{$pref}" tel-type="{$type}">
      <tel-nb><tel-string>tel:<xsl:value-of select="translate(normalize-space(.), ' ()', '')"/></tel-string></tel-nb>
    </tel>
  </xsl:template>

  <xsl:template name="postal">
    <xsl:param name="a"/>
    <xsl:param name="type"/>
    <xsl:param name="pref"/>
    <address-entry pref="{$pref}" address-type="{$type}">
      <address-data><addr-string>
        <xsl:for-each select="$a/j:string[@key = 'street' or @key = 'city' or @key = 'state' or @key = 'postalCode'
                              or @key = 'countryOrRegion'][normalize-space(.) != '']">
          <xsl:if test="position() > 1">, </xsl:if>
          <xsl:value-of select="normalize-space(.)"/>
        </xsl:for-each>
      </addr-string></address-data>
    </address-entry>
  </xsl:template>

  <xsl:template match="j:map">
    <xsl:variable name="business" select="j:array[@key = 'businessPhones']/j:string[normalize-space(.) != '']"/>
    <xsl:variable name="home" select="j:array[@key = 'homePhones']/j:string[normalize-space(.) != '']"/>
    <xsl:variable name="mobile" select="j:string[@key = 'mobilePhone'][normalize-space(.) != '']"/>
    <xsl:variable name="mails" select="j:array[@key = 'emailAddresses']/j:map/j:string[@key = 'address'][normalize-space(.) != '']
                                       | j:string[@key = 'mail'][normalize-space(.) != '']"/>
    <xsl:variable name="addrs" select="j:map[@key = 'businessAddress' or @key = 'homeAddress']
                                       [j:string[normalize-space(.) != '']]"/>
    <person-details>
      <xsl:if test="j:string[@key = 'displayName' or @key = 'givenName' or @key = 'surname'][. != '']">
        <name>
          <name-entry pref="1">
            <xsl:for-each select="j:string[@key = 'displayName'][. != '']"><display-name><xsl:value-of select="."/></display-name></xsl:for-each>
            <xsl:for-each select="j:string[@key = 'givenName'][. != '']"><given><xsl:value-of select="."/></given></xsl:for-each>
            <xsl:for-each select="j:string[@key = 'middleName'][. != '']"><middle><xsl:value-of select="."/></middle></xsl:for-each>
            <xsl:for-each select="j:string[@key = 'surname'][. != '']"><family><xsl:value-of select="."/></family></xsl:for-each>
          </name-entry>
        </name>
      </xsl:if>
      <xsl:if test="$business or $home or $mobile or $mails">
        <comm-addr>
          <xsl:for-each select="$mobile">
            <xsl:call-template name="tel"><xsl:with-param name="type" select="'Mobile'"/><xsl:with-param name="pref" select="1"/></xsl:call-template>
          </xsl:for-each>
          <xsl:for-each select="$business">
            <xsl:call-template name="tel"><xsl:with-param name="type" select="'Work'"/><xsl:with-param name="pref" select="count($mobile) + position()"/></xsl:call-template>
          </xsl:for-each>
          <xsl:for-each select="$home">
            <xsl:call-template name="tel"><xsl:with-param name="type" select="'Home'"/><xsl:with-param name="pref" select="count($mobile | $business) + position()"/></xsl:call-template>
          </xsl:for-each>
          <xsl:for-each select="$mails">
            <uri-entry pref="{position()}" addr-uri-type="Email">
              <addr-uri>mailto:<xsl:value-of select="normalize-space(.)"/></addr-uri>
            </uri-entry>
          </xsl:for-each>
        </comm-addr>
      </xsl:if>
      <xsl:if test="$addrs">
        <address>
          <xsl:for-each select="$addrs">
            <xsl:call-template name="postal">
              <xsl:with-param name="a" select="."/>
              <xsl:with-param name="type" select="substring('WorkHome', 1 + 4 * number(@key = 'homeAddress'), 4)"/>
              <xsl:with-param name="pref" select="position()"/>
            </xsl:call-template>
          </xsl:for-each>
        </address>
      </xsl:if>
      <xsl:for-each select="j:string[@key = 'birthday'][string-length(normalize-space(.)) >= 10][1]">
        <birth><birth-date><date><xsl:value-of select="substring(normalize-space(.), 1, 10)"/></date></birth-date></birth>
      </xsl:for-each>
      <xsl:if test="j:string[@key = 'companyName' or @key = 'jobTitle'][normalize-space(.) != '']">
        <career>
          <xsl:for-each select="j:string[@key = 'companyName'][normalize-space(.) != '']"><employer><xsl:value-of select="."/></employer></xsl:for-each>
          <xsl:for-each select="j:string[@key = 'jobTitle'][normalize-space(.) != '']"><duty><xsl:value-of select="."/></duty></xsl:for-each>
        </career>
      </xsl:if>
    </person-details>
  </xsl:template>
</xsl:stylesheet>
